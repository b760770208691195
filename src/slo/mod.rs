//! SLO verdicts and always-on invariants, computed from a run's metrics.
//!
//! An SLO selects tenants, a window and expectations. With scope `each` every selected tenant
//! is checked on its own; with `pooled` their requests are merged and checked once. A check
//! with fewer samples than `min_samples` is inconclusive, never a silent pass: latency
//! expectations count `ok` requests, rate expectations count finished requests.

use crate::model::RunOutput;
use crate::model::metrics::{Metrics, WindowStats};
use crate::scenario::{Expectation, Metric, Scenario, Scope, Threshold};
use crate::text::thousands;

/// The result of one check, one SLO, or the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Held.
    Passed,
    /// Too few samples to judge.
    Inconclusive,
    /// Broken.
    Failed,
}

/// How an always-on invariant came out, for display.
impl InvariantResult {
    /// `"pass"`, `"fail"`, or `"n/a"` when the run never exercised it.
    pub fn status(&self) -> &'static str {
        match (self.passed, self.exercised) {
            (false, _) => "fail",
            (true, true) => "pass",
            (true, false) => "n/a",
        }
    }
}

impl Status {
    /// `"pass"`, `"inconclusive"` or `"fail"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "pass",
            Status::Inconclusive => "inconclusive",
            Status::Failed => "fail",
        }
    }
}

/// One expectation checked against one tenant (or the pooled selection).
#[derive(Clone, Debug)]
pub struct Check {
    /// Tenant index, or `None` for a pooled check.
    pub tenant: Option<usize>,
    /// Index into the SLO's expectations.
    pub expectation: usize,
    /// Observed value in report units (ms, fraction, count); `None` without samples.
    pub observed: Option<f64>,
    /// Samples the value rests on.
    pub samples: u64,
    /// Verdict.
    pub status: Status,
}

/// One SLO's result.
#[derive(Clone, Debug)]
pub struct SloResult {
    /// Index into `Scenario::slos`.
    pub slo: usize,
    /// Worst check status.
    pub status: Status,
    /// Every check, tenant-major.
    pub checks: Vec<Check>,
}

/// One always-on invariant's result.
#[derive(Clone, Debug)]
pub struct InvariantResult {
    /// Name.
    pub name: &'static str,
    /// Whether it held: no violation was seen (also true when nothing was checked).
    pub passed: bool,
    /// Whether the run did anything the invariant checks (a run without EU-only tenants never
    /// exercises residency): an invariant never exercised is shown N/A, not as held.
    pub exercised: bool,
    /// What was checked, with the numbers.
    pub detail: String,
}

/// Everything judged about a run.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Per SLO.
    pub slos: Vec<SloResult>,
    /// Per invariant.
    pub invariants: Vec<InvariantResult>,
    /// The run's verdict: failed if any SLO or invariant failed, else inconclusive if any SLO
    /// was, else passed.
    pub verdict: Status,
}

/// Judges a run against the scenario's SLOs and the always-on invariants.
pub fn evaluate(scenario: &Scenario, output: &RunOutput) -> Evaluation {
    let metrics = &output.metrics;
    let unaccounted = output.unaccounted;
    let slos: Vec<SloResult> = scenario
        .slos
        .iter()
        .enumerate()
        .map(|(i, _)| evaluate_slo(scenario, output, i))
        .collect();
    let checks = &output.invariants;
    let mut invariants = vec![conservation(metrics, unaccounted)];
    for (name, check, what) in [
        ("no_tenantless_work", &checks.tenantless, "background jobs"),
        (
            "no_cross_tenant_access",
            &checks.cross_tenant,
            "data-key uses",
        ),
        ("eu_residency", &checks.residency, "EU-only requests"),
        (
            "no_split_brain",
            &checks.split_brain,
            "authoritative write acceptances",
        ),
        (
            "no_lost_writes",
            &checks.lost_writes,
            "owner checks of acknowledged writes",
        ),
    ] {
        invariants.push(invariant(name, check, what));
    }
    if !scenario.system.lifecycle.is_empty() {
        for (name, check, what) in [
            (
                "no_access_before_ready",
                &checks.access_before_ready,
                "requests of signed-up tenants",
            ),
            (
                "no_orphaned_resources",
                &checks.orphans,
                "resources workflows created",
            ),
            (
                "no_duplicate_side_effects",
                &checks.duplicates,
                "side effects of workflow steps",
            ),
            (
                "workflows_within_bound",
                &checks.workflow_bound,
                "workflows ended or overdue",
            ),
            (
                "deletion_complete_at_bound",
                &checks.deletion_ledger,
                "deletions due",
            ),
        ] {
            invariants.push(invariant(name, check, what));
        }
    }
    let slo_worst = slos
        .iter()
        .map(|s| s.status)
        .max()
        .unwrap_or(Status::Passed);
    let verdict = if invariants.iter().any(|i| !i.passed) {
        Status::Failed
    } else {
        slo_worst
    };
    Evaluation {
        slos,
        invariants,
        verdict,
    }
}

fn evaluate_slo(scenario: &Scenario, output: &RunOutput, slo_index: usize) -> SloResult {
    let metrics = &output.metrics;
    let slo = &scenario.slos[slo_index];
    let slot_key = crate::model::metrics::slot::key(slo.window, slo.filter);
    let window = &scenario.system.windows[slo.window];
    let end = scenario.system.end();
    // Onboarding metrics judge the selected tenants' sign-ups, not their requests.
    let judge = |expectation: &Expectation,
                 e: usize,
                 tenant: Option<usize>,
                 tenants: &[usize],
                 stats: &WindowStats| {
        if expectation.metric.is_onboarding() {
            let (observed, samples) =
                observe_onboarding(expectation.metric, output, tenants, window, end);
            judged(expectation, e, tenant, observed, samples, slo.min_samples)
        } else {
            check(expectation, e, tenant, stats, slo.min_samples)
        }
    };
    let mut checks = Vec::new();
    match slo.scope {
        Scope::Each => {
            for &tenant in &slo.tenants {
                let empty = WindowStats::default();
                let stats = metrics.tenants[tenant].slot(slot_key).unwrap_or(&empty);
                for (e, expectation) in slo.expect.iter().enumerate() {
                    checks.push(judge(expectation, e, Some(tenant), &[tenant], stats));
                }
            }
        }
        Scope::Pooled => {
            let mut pooled = WindowStats::default();
            for &tenant in &slo.tenants {
                if let Some(stats) = metrics.tenants[tenant].slot(slot_key) {
                    pooled.merge(stats);
                }
            }
            for (e, expectation) in slo.expect.iter().enumerate() {
                checks.push(judge(expectation, e, None, &slo.tenants, &pooled));
            }
        }
    }
    // An SLO that selects nobody cannot pass.
    let status = if checks.is_empty() {
        Status::Inconclusive
    } else {
        checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Passed)
    };
    SloResult {
        slo: slo_index,
        status,
        checks,
    }
}

/// The value of `metric` over `stats` in report units, and the samples it rests on.
pub fn observe(metric: Metric, stats: &WindowStats) -> (Option<f64>, u64) {
    let counts = &stats.counts;
    let finished = counts.finished();
    let fraction = |n: u64| (finished > 0).then(|| n as f64 / finished as f64);
    let latency = &stats.latency;
    match metric {
        Metric::Percentile(p) => (
            latency.percentile(p).map(|d| d.as_millis_f64()),
            latency.count(),
        ),
        Metric::Mean => (latency.mean().map(|d| d.as_millis_f64()), latency.count()),
        Metric::Max => (latency.max().map(|d| d.as_millis_f64()), latency.count()),
        Metric::ErrorRate => (fraction(counts.errors()), finished),
        Metric::ThrottleRate => (fraction(counts.throttled), finished),
        Metric::Availability => (fraction(counts.errors()).map(|e| 1.0 - e), finished),
        Metric::Count => (Some(finished as f64), finished),
        // Dead-lettered jobs among those submitted in the window; like `count`, never
        // inconclusive (a tenant that submitted nothing has none).
        Metric::DeadLetters => (Some(stats.jobs.dead_lettered as f64), stats.jobs.submitted),
        Metric::JobsPercentile(p) => (
            stats.jobs.latency.percentile(p).map(|d| d.as_millis_f64()),
            stats.jobs.latency.count(),
        ),
        // Judged from the run's lifecycle (`observe_onboarding`), not from request stats.
        Metric::OnboardingPercentile(_) | Metric::OnboardingFailedRate => (None, 0),
    }
}

/// The value of an onboarding metric over the sign-ups of `tenants` in `window` (by sign-up
/// time), in report units, and the samples it rests on: a percentile of sign-up-to-access
/// time (unfinished sign-ups at their age at `end`), or the failed fraction of those that
/// ended.
pub fn observe_onboarding(
    metric: Metric,
    output: &RunOutput,
    tenants: &[usize],
    window: &crate::model::config::Window,
    end: crate::time::SimTime,
) -> (Option<f64>, u64) {
    use crate::model::lifecycle::OnboardingOutcome;
    let Some(lifecycle) = output.lifecycle.as_ref() else {
        return (None, 0);
    };
    let mut selected = vec![false; output.metrics.tenants.len()];
    for &t in tenants {
        selected[t] = true;
    }
    let onboardings = lifecycle
        .onboardings
        .iter()
        .filter(|o| selected[o.tenant] && window.contains(o.signed_up));
    match metric {
        Metric::OnboardingPercentile(p) => {
            let mut times: Vec<_> = onboardings.filter_map(|o| o.time(end)).collect();
            times.sort_unstable();
            (
                crate::model::lifecycle::nearest_rank(&times, p).map(|d| d.as_millis_f64()),
                times.len() as u64,
            )
        }
        Metric::OnboardingFailedRate => {
            let (mut ended, mut failed) = (0u64, 0u64);
            for o in onboardings {
                match o.outcome {
                    OnboardingOutcome::Completed | OnboardingOutcome::AwaitingAccess => ended += 1,
                    OnboardingOutcome::Compensated | OnboardingOutcome::Stuck => {
                        ended += 1;
                        failed += 1;
                    }
                    OnboardingOutcome::Refused | OnboardingOutcome::Unfinished => {}
                }
            }
            ((ended > 0).then(|| failed as f64 / ended as f64), ended)
        }
        _ => (None, 0),
    }
}

fn check(
    expectation: &Expectation,
    index: usize,
    tenant: Option<usize>,
    stats: &WindowStats,
    min_samples: u64,
) -> Check {
    let (observed, samples) = observe(expectation.metric, stats);
    judged(expectation, index, tenant, observed, samples, min_samples)
}

/// The verdict of one expectation on an observed value resting on `samples`.
fn judged(
    expectation: &Expectation,
    index: usize,
    tenant: Option<usize>,
    observed: Option<f64>,
    samples: u64,
    min_samples: u64,
) -> Check {
    let status = match observed {
        _ if !matches!(expectation.metric, Metric::Count | Metric::DeadLetters)
            && samples < min_samples =>
        {
            Status::Inconclusive
        }
        None => Status::Inconclusive,
        Some(value) if holds(expectation, value) => Status::Passed,
        Some(_) => Status::Failed,
    };
    Check {
        tenant,
        expectation: index,
        observed,
        samples,
        status,
    }
}

/// Whether `value` (in report units, as [`observe`] gives it) meets `expectation`.
pub fn holds(expectation: &Expectation, value: f64) -> bool {
    match expectation.threshold {
        // Compare latencies in integer nanoseconds, not rounded milliseconds.
        Threshold::Duration(limit) => expectation
            .op
            .holds((value * 1e6).round(), limit.as_nanos() as f64),
        other => expectation.op.holds(value, other.as_reported()),
    }
}

/// An observed invariant: passed iff no violation, with counts and the first violation.
fn invariant(
    name: &'static str,
    check: &crate::model::invariants::Check,
    what: &str,
) -> InvariantResult {
    let detail = match &check.first {
        None if check.checked == 0 => format!("not exercised by this run (no {what})"),
        None => format!("{} {what} checked, no violation", thousands(check.checked)),
        Some(first) => format!(
            "{} violation(s) in {} checks; first: {first}",
            thousands(check.violations),
            thousands(check.checked)
        ),
    };
    InvariantResult {
        name,
        passed: check.violations == 0,
        exercised: check.checked > 0,
        detail,
    }
}

/// Conservation: every request issued either ended in exactly one outcome or is still in
/// flight, and every request in flight is accounted for by live work or a pending retry.
fn conservation(metrics: &Metrics, unaccounted: u64) -> InvariantResult {
    let mut issued = 0;
    let mut finished = 0;
    let mut in_flight = 0;
    let mut broken = Vec::new();
    for (i, t) in metrics.tenants.iter().enumerate() {
        issued += t.total.issued;
        finished += t.total.finished();
        in_flight += t.in_flight_at_end;
        if t.total.issued != t.total.finished() + t.in_flight_at_end {
            broken.push(i);
        }
    }
    let passed = broken.is_empty() && unaccounted == 0;
    let mut detail = format!(
        "{} issued = {} finished + {} in flight",
        thousands(issued),
        thousands(finished),
        thousands(in_flight)
    );
    if !broken.is_empty() {
        detail.push_str(&format!(
            "; books do not balance for {} tenant(s)",
            broken.len()
        ));
    }
    if unaccounted > 0 {
        detail.push_str(&format!(
            "; {unaccounted} in-flight request(s) have neither live work nor a pending retry"
        ));
    }
    InvariantResult {
        name: "conservation",
        passed,
        exercised: issued > 0,
        detail,
    }
}
