//! Run reports: `report.json` (the fixed fields of ARCHITECTURE.md and more), the terminal
//! summary, and the files a run leaves for people and CI: `summary.md`, `junit.xml`, SVG plots
//! and `index.html` (see [`files`]); and the A/B comparison of two runs.
//!
//! A report holds no wall-clock figure, so the same inputs give byte-identical JSON. Numbers
//! are rounded (latencies to the microsecond, fractions to six decimals) so the files diff
//! cleanly.

pub mod compare;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod plots;
pub mod summary;
pub mod sweep;
pub mod tables;
pub mod timeline;

use serde::{Deserialize, Serialize};

use crate::model::RunOutput;
use crate::model::metrics::{Counts, Latency, WindowStats};
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
    /// Per SLO.
    pub slos: Vec<SloReport>,
    /// Always-on invariants.
    pub invariants: Vec<InvariantReport>,
    /// Per fault: the tenants whose SLOs failed during or after it.
    pub blast_radius: Vec<BlastRadius>,
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

/// Who a fault hurt: tenants with a failed SLO check in a window overlapping the fault or
/// the time after it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlastRadius {
    /// Fault name.
    pub fault: String,
    /// Fault kind.
    pub kind: String,
    /// Tenants the fault targets by design (its own tenant, or those of a failed cell).
    pub targeted: u64,
    /// Tenants with a failed check.
    pub affected: u64,
    /// `affected` over all tenants.
    pub fraction: f64,
    /// Their names (the first 100).
    pub tenants: Vec<String>,
}

/// One invariant's result.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InvariantReport {
    /// Name.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
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
                requests: c.issued,
                ok: c.ok,
                throttled: c.throttled,
                rejected: c.rejected,
                failed: c.failed,
                timed_out: c.timed_out,
                in_flight: in_flight(&c),
                latency_ms: latency_report(&stats.latency),
            }
        })
        .collect();
    let tiers = scenario
        .system
        .tiers
        .iter()
        .enumerate()
        .map(|(tier, spec)| {
            let mut pooled = WindowStats::default();
            let mut members = 0;
            for (i, t) in scenario.system.tenants.iter().enumerate() {
                if t.tier == tier {
                    members += 1;
                    pooled.merge(&whole(i));
                }
            }
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
            detail: i.detail.clone(),
        })
        .collect();
    let blast_radius = blast_radius(scenario, evaluation);
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
        slos,
        invariants,
        blast_radius,
        scenario_text: invocation.scenario_text.clone(),
    }
}

/// Per fault, the tenants with a failed check in any SLO whose window overlaps the fault or
/// what follows it (a pooled check counts for its whole selection).
fn blast_radius(scenario: &Scenario, evaluation: &Evaluation) -> Vec<BlastRadius> {
    let system = &scenario.system;
    let total = system.tenants.len().max(1);
    system
        .faults
        .iter()
        .map(|fault| {
            let mut hit = vec![false; system.tenants.len()];
            for result in &evaluation.slos {
                let slo = &scenario.slos[result.slo];
                let window = &system.windows[slo.window];
                if window.end <= fault.at {
                    continue;
                }
                for check in result.checks.iter().filter(|c| c.status == Status::Failed) {
                    match check.tenant {
                        Some(t) => hit[t] = true,
                        None => slo.tenants.iter().for_each(|&t| hit[t] = true),
                    }
                }
            }
            let affected: Vec<usize> = (0..hit.len()).filter(|&t| hit[t]).collect();
            BlastRadius {
                fault: fault.name.clone(),
                kind: fault.kind.name().to_string(),
                targeted: fault.named_tenants().len() as u64,
                affected: affected.len() as u64,
                fraction: round_to(affected.len() as f64 / total as f64, 6),
                tenants: affected
                    .iter()
                    .take(100)
                    .map(|&t| system.tenants[t].name.clone())
                    .collect(),
            }
        })
        .collect()
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
                    requests: 0,
                    ok: 0,
                    throttled: 0,
                    rejected: 0,
                    failed: 0,
                    timed_out: 0,
                    in_flight: 0,
                    latency_ms: None,
                })
                .collect(),
            slos: vec![SloReport {
                name: "fast".into(),
                tenants: "all".into(),
                scope: "each".into(),
                window: "whole".into(),
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
            scenario_text: String::new(),
        }
    }
}
