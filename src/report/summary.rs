//! The terminal summary: per-tier table, worst tenants, each SLO with observed vs expected,
//! invariants, the verdict and the command that reproduces the run.
//!
//! Rendered from a [`Report`] alone, so a saved report.json can be summarised again.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{CheckReport, LatencyReport, Report, SloReport, TenantReport};
pub use crate::text::thousands;

/// How many failing checks an SLO lists before summarising the rest.
const MAX_LISTED_FAILURES: usize = 12;
/// How many tenants the "worst tenants" table shows.
const WORST_TENANTS: usize = 5;

/// A latency in milliseconds, with as many digits as are meaningful: `8.89ms`, `266ms`, `1.20s`.
pub(crate) fn ms(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.2}s", value / 1000.0)
    } else if value >= 100.0 {
        format!("{value:.0}ms")
    } else if value >= 10.0 {
        format!("{value:.1}ms")
    } else {
        format!("{value:.2}ms")
    }
}

/// `part` as a percentage of `whole` (`-` when `whole` is 0).
pub(crate) fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        let p = part as f64 * 100.0 / whole as f64;
        if p > 0.0 && p < 0.01 {
            "<0.01%".to_string()
        } else {
            format!("{p:.2}%")
        }
    }
}

pub(crate) fn latency_cells(latency: &Option<LatencyReport>) -> (String, String) {
    match latency {
        Some(l) => (ms(l.p50), ms(l.p99)),
        None => ("-".to_string(), "-".to_string()),
    }
}

pub(crate) fn errors(t: &TenantReport) -> u64 {
    t.rejected + t.failed + t.timed_out
}

pub(crate) fn finished(t: &TenantReport) -> u64 {
    t.ok + t.throttled + errors(t)
}

/// Formats an observed value of an expectation for reading.
pub(crate) fn observed_text(expect: &str, observed: Option<f64>) -> String {
    let Some(v) = observed else {
        return "no samples".to_string();
    };
    let metric = expect.split(['<', '>']).next().unwrap_or("").trim();
    if metric.starts_with('p')
        || metric.starts_with("jobs_p")
        || metric == "mean"
        || metric == "max"
    {
        ms(v)
    } else if metric == "count" {
        thousands(v as u64)
    } else {
        format!("{v:.4}")
    }
}

/// Renders the summary. `command` is the repro command as the user can run it here;
/// `written` lists report files written.
pub fn render(report: &Report, command: &str, written: &[String]) -> String {
    let mut out = String::new();
    let tenants_total = report.tenants.len() as u64;
    let _ = writeln!(out, "{} — {}", report.scenario, report.description);
    let _ = writeln!(
        out,
        "seed {} · {}s simulated (warmup {}s) · {} tenants · {} events",
        report.seed,
        report.run.duration_s,
        report.run.warmup_s,
        thousands(tenants_total),
        thousands(report.run.events)
    );
    if !report.overrides.is_empty() {
        let _ = writeln!(out, "overrides: {}", report.overrides.join(" "));
    }

    let _ = writeln!(out, "\nTiers (requests issued after warmup)");
    let _ = writeln!(
        out,
        "  {:<14} {:>7} {:>11} {:>8} {:>10} {:>8} {:>9} {:>9}",
        "tier", "tenants", "requests", "ok", "throttled", "errors", "p50", "p99"
    );
    for tier in &report.tiers {
        let finished = tier.ok + tier.throttled + tier.rejected + tier.failed + tier.timed_out;
        let (p50, p99) = latency_cells(&tier.latency_ms);
        let _ = writeln!(
            out,
            "  {:<14} {:>7} {:>11} {:>8} {:>10} {:>8} {:>9} {:>9}",
            tier.name,
            thousands(tier.tenants),
            thousands(tier.requests),
            percent(tier.ok, finished),
            percent(tier.throttled, finished),
            percent(tier.rejected + tier.failed + tier.timed_out, finished),
            p50,
            p99
        );
    }

    let ranked = rank_tenants(report, WORST_TENANTS);
    let _ = writeln!(out, "\nWorst tenants");
    let _ = writeln!(
        out,
        "  {:<18} {:<12} {:>11} {:>8} {:>10} {:>8} {:>9} {:>13}",
        "tenant", "tier", "requests", "ok", "throttled", "errors", "p99", "failed checks"
    );
    for (t, failed) in &ranked {
        let (_, p99) = latency_cells(&t.latency_ms);
        let f = finished(t);
        let _ = writeln!(
            out,
            "  {:<18} {:<12} {:>11} {:>8} {:>10} {:>8} {:>9} {:>13}",
            t.name,
            t.tier,
            thousands(t.requests),
            percent(t.ok, f),
            percent(t.throttled, f),
            percent(errors(t), f),
            p99,
            failed
        );
    }

    let _ = writeln!(out, "\nSLOs");
    if report.slos.is_empty() {
        let _ = writeln!(out, "  (none defined)");
    }
    for slo in &report.slos {
        let _ = writeln!(
            out,
            "  {:<5} {}  [{}, {}, {}]",
            slo.status.to_uppercase(),
            slo.name,
            slo.tenants,
            slo.scope,
            slo.window
        );
        for expect in &slo.expect {
            let e = expectation_summary(slo, expect);
            let worst_text = e
                .worst
                .map(|c| {
                    let who = if c.tenant == "(pooled)" {
                        "pooled"
                    } else {
                        c.tenant.as_str()
                    };
                    format!("worst {} ({who})", observed_text(expect, c.observed))
                })
                .unwrap_or_else(|| "no samples".to_string());
            let _ = writeln!(
                out,
                "        {expect:<24} {}/{} pass, {worst_text}",
                e.passed, e.checks
            );
        }
        // One line per tenant that did not pass: which expectations, and what was observed.
        let mut by_tenant: Vec<(&str, Vec<String>)> = Vec::new();
        for c in slo.checks.iter().filter(|c| c.status != "pass") {
            let what = if c.status == "inconclusive" {
                format!(
                    "{} inconclusive ({} samples)",
                    c.expect,
                    thousands(c.samples)
                )
            } else {
                format!(
                    "{} observed {}",
                    c.expect,
                    observed_text(&c.expect, c.observed)
                )
            };
            match by_tenant.last_mut() {
                Some((tenant, items)) if *tenant == c.tenant.as_str() => items.push(what),
                _ => by_tenant.push((c.tenant.as_str(), vec![what])),
            }
        }
        for (tenant, items) in by_tenant.iter().take(MAX_LISTED_FAILURES) {
            let _ = writeln!(out, "        ✗ {tenant:<18} {}", items.join("; "));
        }
        if by_tenant.len() > MAX_LISTED_FAILURES {
            let _ = writeln!(
                out,
                "        … and {} more tenants (see report.json)",
                by_tenant.len() - MAX_LISTED_FAILURES
            );
        }
    }

    if !report.blast_radius.is_empty() || report.unexplained.count > 0 {
        let _ = writeln!(
            out,
            "\nBlast radius (failed checks that overlap a fault in time, of tenants using what it \
             touches)"
        );
        for b in &report.blast_radius {
            let names = if b.tenants.is_empty() {
                String::new()
            } else {
                let shown: Vec<&str> = b.tenants.iter().take(6).map(String::as_str).collect();
                let more = if b.affected > shown.len() as u64 {
                    ", …"
                } else {
                    ""
                };
                format!(": {}{more}", shown.join(", "))
            };
            let _ = writeln!(
                out,
                "  {:<18} {:<20} targets {:>6} ({} failed)  affected {:>6} of {} in scope{names}",
                b.fault,
                b.kind,
                thousands(b.targeted),
                thousands(b.targets_failed),
                thousands(b.affected),
                thousands(b.in_scope),
            );
            let _ = writeln!(out, "  {:<18} touches {}", "", super::tables::touches(b));
        }
        let u = &report.unexplained;
        if u.count > 0 {
            let shown: Vec<&str> = u.tenants.iter().take(6).map(String::as_str).collect();
            let more = if u.count > shown.len() as u64 {
                ", …"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  failed, explained by no fault: {}: {}{more}",
                thousands(u.count),
                shown.join(", ")
            );
        }
    }

    let _ = writeln!(out, "\nInvariants");
    for inv in &report.invariants {
        let _ = writeln!(
            out,
            "  {:<5} {}: {}",
            if inv.passed { "PASS" } else { "FAIL" },
            inv.name,
            inv.detail
        );
    }

    if !written.is_empty() {
        let _ = writeln!(out);
        for path in written {
            let _ = writeln!(out, "wrote {path}");
        }
    }
    let _ = writeln!(out, "\nVerdict: {}", report.verdict.to_uppercase());
    let _ = writeln!(out, "Reproduce: {command}");
    out
}

/// The `n` worst tenants, worst first: most failed checks, then error rate, then p99, then
/// name; with each tenant's failed checks.
///
/// Each tenant's keys are computed once, and only the `n` worst are sorted: the terminal
/// summary, summary.md and index.html each ask for a handful of rows, and sorting 100,000
/// tenants with keys recomputed per comparison cost an eighth of the whole `simulate` command
/// at that size.
pub(crate) fn rank_tenants(report: &Report, n: usize) -> Vec<(&TenantReport, u64)> {
    let mut failed_checks: BTreeMap<&str, u64> = BTreeMap::new();
    for slo in &report.slos {
        for c in slo.checks.iter().filter(|c| c.status == "fail") {
            *failed_checks.entry(c.tenant.as_str()).or_default() += 1;
        }
    }
    struct Ranked<'a> {
        failed: u64,
        error_rate: f64,
        p99: f64,
        position: usize,
        tenant: &'a TenantReport,
    }
    let mut ranked: Vec<Ranked> = report
        .tenants
        .iter()
        .enumerate()
        .map(|(position, t)| {
            let f = finished(t);
            Ranked {
                failed: failed_checks.get(t.name.as_str()).copied().unwrap_or(0),
                error_rate: if f == 0 {
                    0.0
                } else {
                    errors(t) as f64 / f as f64
                },
                p99: t.latency_ms.as_ref().map_or(0.0, |l| l.p99),
                position,
                tenant: t,
            }
        })
        .collect();
    // The report's position breaks the last ties (names are unique in a loaded scenario, but
    // not in every `Report` one can build): a total order, so the unstable sort gives what a
    // stable sort of every tenant would.
    let worst_first = |a: &Ranked, b: &Ranked| {
        b.failed
            .cmp(&a.failed)
            .then(b.error_rate.total_cmp(&a.error_rate))
            .then(b.p99.total_cmp(&a.p99))
            .then(a.tenant.name.cmp(&b.tenant.name))
            .then(a.position.cmp(&b.position))
    };
    if n < ranked.len() {
        ranked.select_nth_unstable_by(n, worst_first);
        ranked.truncate(n);
    }
    ranked.sort_unstable_by(worst_first);
    ranked.into_iter().map(|r| (r.tenant, r.failed)).collect()
}

/// One expectation of an SLO over its checks.
pub(crate) struct ExpectationSummary<'a> {
    /// Checks of this expectation.
    pub checks: usize,
    /// Of which passed.
    pub passed: usize,
    /// Of which inconclusive.
    pub inconclusive: usize,
    /// The check with the worst observed value.
    pub worst: Option<&'a CheckReport>,
}

/// How the checks of `expect` went in `slo`.
pub(crate) fn expectation_summary<'a>(slo: &'a SloReport, expect: &str) -> ExpectationSummary<'a> {
    let checks: Vec<&CheckReport> = slo.checks.iter().filter(|c| c.expect == expect).collect();
    let worst = checks
        .iter()
        .copied()
        .filter(|c| c.observed.is_some())
        .max_by(|a, b| {
            let (x, y) = (a.observed.unwrap_or(0.0), b.observed.unwrap_or(0.0));
            if expect.contains('>') {
                y.total_cmp(&x)
            } else {
                x.total_cmp(&y)
            }
        });
    ExpectationSummary {
        checks: checks.len(),
        passed: checks.iter().filter(|c| c.status == "pass").count(),
        inconclusive: checks.iter().filter(|c| c.status == "inconclusive").count(),
        worst,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::report;
    use super::*;
    use proptest::prelude::*;

    /// The order's definition: every tenant, stably sorted by the full comparison; each
    /// tenant given by its cell field (which the test sets to the tenant's number).
    fn ranked_by_definition(report: &Report) -> Vec<(String, u64)> {
        let failed = |t: &TenantReport| {
            report.slos[0]
                .checks
                .iter()
                .filter(|c| c.tenant == t.name && c.status == "fail")
                .count() as u64
        };
        let error_rate = |t: &TenantReport| match finished(t) {
            0 => 0.0,
            f => errors(t) as f64 / f as f64,
        };
        let p99 = |t: &TenantReport| t.latency_ms.as_ref().map_or(0.0, |l| l.p99);
        let mut all: Vec<&TenantReport> = report.tenants.iter().collect();
        all.sort_by(|a, b| {
            failed(b)
                .cmp(&failed(a))
                .then(error_rate(b).total_cmp(&error_rate(a)))
                .then(p99(b).total_cmp(&p99(a)))
                .then(a.name.cmp(&b.name))
        });
        all.into_iter()
            .map(|t| (t.cell.clone(), failed(t)))
            .collect()
    }

    proptest! {
        /// The `n` worst are the first `n` of the full order, for any `n` (none, some, all,
        /// more), with ties on every key common, names shared by neighbours, NaN p99s and no
        /// tenants at all.
        #[test]
        fn rank_tenants_is_the_head_of_the_full_order(
            tenants in prop::collection::vec(
                (0u64..3, 0u64..3, 0u64..3, prop::option::of(prop_oneof![
                    (0u8..3).prop_map(f64::from),
                    Just(f64::NAN),
                ]), any::<bool>()),
                0..60,
            ),
            n in 0usize..70,
        ) {
            let mut r = report(tenants.len(), 0);
            r.slos[0].checks.clear();
            for (i, (t, &(failed_checks, ok, failed, p99, twin))) in
                r.tenants.iter_mut().zip(&tenants).enumerate()
            {
                // A tenant named as the one before it: the position must break the tie.
                if twin && i > 0 {
                    t.name = format!("t-{:04}", i - 1);
                }
                // Who is who, whatever the names: the cell field holds the tenant's number.
                t.cell = i.to_string();
                t.ok = ok;
                t.failed = failed;
                t.latency_ms = p99.map(|p| LatencyReport {
                    mean: 1.0,
                    p50: 1.0,
                    p90: 1.0,
                    p99: p,
                    p999: 1.0,
                    max: 1.0,
                });
                for _ in 0..failed_checks {
                    r.slos[0].checks.push(CheckReport {
                        tenant: t.name.clone(),
                        expect: "p99 < 250ms".into(),
                        observed: Some(300.0),
                        samples: 1,
                        passed: false,
                        status: "fail".into(),
                    });
                }
            }
            // Names out of input order, so the name tie-break is exercised.
            r.tenants.reverse();
            let expected: Vec<(String, u64)> =
                ranked_by_definition(&r).into_iter().take(n).collect();
            let got: Vec<(String, u64)> = rank_tenants(&r, n)
                .into_iter()
                .map(|(t, failed)| (t.cell.clone(), failed))
                .collect();
            prop_assert_eq!(got, expected);
        }
    }
}
