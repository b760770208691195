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
        || metric.starts_with("onboarding_p")
        || metric == "mean"
        || metric == "max"
    {
        ms(v)
    } else if metric == "count" || metric == "dead_letters" {
        thousands(v as u64)
    } else if expect.contains('%') {
        // A rate written as a percentage is shown as one.
        let p = v * 100.0;
        if p > 0.0 && p < 0.01 {
            "<0.01%".to_string()
        } else {
            format!("{p:.2}%")
        }
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

    if let Some(classes) = super::tables::classes(report) {
        let _ = writeln!(out, "\nRequest classes (requests issued after warmup)");
        out.push_str(&plain_table(&classes));
    }
    if let Some(counters) = super::tables::counters(report) {
        let _ = writeln!(out, "\nDatabases and dependencies (after warmup)");
        out.push_str(&plain_table(&counters));
    }
    for (title, table) in super::onboarding::tables(report) {
        let _ = writeln!(out, "\n{title}");
        out.push_str(&plain_table(&table));
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

    if let Some(jobs) = super::tables::jobs(report) {
        let _ = writeln!(out, "\nBackground jobs (submitted after warmup)");
        out.push_str(&super::compare::plain(&jobs, "  "));
        let worst = super::tables::dead_letter_tenants(report, WORST_TENANTS);
        if !worst.is_empty() {
            let listed: Vec<String> = worst
                .iter()
                .map(|(name, dead, submitted)| {
                    format!("{name} {} of {}", thousands(*dead), thousands(*submitted))
                })
                .collect();
            let _ = writeln!(out, "  most dead-lettered: {}", listed.join(", "));
        }
    }

    let _ = writeln!(out, "\nSLOs");
    if report.slos.is_empty() {
        let _ = writeln!(out, "  (none defined)");
    }
    for slo in &report.slos {
        let _ = writeln!(
            out,
            "  {:<5} {}  [{}, {}, {}{}]",
            slo.status.to_uppercase(),
            slo.name,
            slo.tenants,
            slo.scope,
            slo.window,
            requests_filter(slo)
        );
        for expect in &slo.expect {
            let e = expectation_summary(slo, expect);
            let worst_text = match e.worst {
                Some(c) => {
                    let who = if c.tenant == "(pooled)" {
                        "pooled"
                    } else {
                        c.tenant.as_str()
                    };
                    format!(", worst {} ({who})", observed_text(expect, c.observed))
                }
                None if e.checks > 0 => ", no conclusive check".to_string(),
                None => String::new(),
            };
            let _ = writeln!(out, "        {expect:<24} {}{worst_text}", e.counts());
        }
        // One line per tenant that did not pass, failing ones first: which expectations, and
        // what was observed.
        let listed = not_passing(slo);
        for n in listed.iter().take(MAX_LISTED_FAILURES) {
            let items: Vec<String> = n
                .checks
                .iter()
                .map(|c| {
                    if c.status == "inconclusive" {
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
                    }
                })
                .collect();
            let mark = if n.failed { "✗" } else { "?" };
            let _ = writeln!(out, "        {mark} {:<18} {}", n.tenant, items.join("; "));
        }
        if let Some(more) = more_not_passing(&listed, MAX_LISTED_FAILURES) {
            let _ = writeln!(out, "        … and {more} (see report.json)");
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
            inv.status.to_uppercase(),
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
    let _ = writeln!(out, "\n{}", verdict_counts(report));
    let _ = writeln!(out, "Verdict: {}", report.verdict.to_uppercase());
    let _ = writeln!(out, "Reproduce: {command}");
    out
}

/// The counts behind the verdict: `SLOs: 1 pass, 0 fail, 0 inconclusive · invariants: 4 held,
/// 0 violated, 2 N/A (never exercised)`. An invariant the run never exercised is not counted
/// as held.
pub(crate) fn verdict_counts(report: &Report) -> String {
    let slos = |status: &str| report.slos.iter().filter(|s| s.status == status).count() as u64;
    let invariants = |status: &str| {
        report
            .invariants
            .iter()
            .filter(|i| i.status == status)
            .count() as u64
    };
    format!(
        "SLOs: {} pass, {} fail, {} inconclusive · invariants: {} held, {} violated, {} N/A \
         (never exercised)",
        thousands(slos("pass")),
        thousands(slos("fail")),
        thousands(slos("inconclusive")),
        thousands(invariants("pass")),
        thousands(invariants("fail")),
        thousands(invariants("n/a"))
    )
}

/// A tenant that did not pass an SLO: its checks that did not pass, in check order.
pub(crate) struct NotPassing<'a> {
    /// Tenant name, or `(pooled)`.
    pub tenant: &'a str,
    /// Whether one of its checks failed (else they are inconclusive).
    pub failed: bool,
    /// Its checks that failed or were inconclusive.
    pub checks: Vec<&'a CheckReport>,
}

/// The tenants that did not pass `slo`: every failing one before any inconclusive one (a list
/// cut short must never hide a failure behind inconclusive tenants), each group in report order.
pub(crate) fn not_passing(slo: &SloReport) -> Vec<NotPassing<'_>> {
    let mut out: Vec<NotPassing<'_>> = Vec::new();
    for c in slo.checks.iter().filter(|c| c.status != "pass") {
        match out.last_mut() {
            Some(n) if n.tenant == c.tenant.as_str() => {
                n.failed |= c.status == "fail";
                n.checks.push(c);
            }
            _ => out.push(NotPassing {
                tenant: &c.tenant,
                failed: c.status == "fail",
                checks: vec![c],
            }),
        }
    }
    // Stable: report order within each group.
    out.sort_by_key(|n| !n.failed);
    out
}

/// What a list of `listed` cut at `shown` leaves out: `3 more failing and 856 more
/// inconclusive tenants`, or `None`.
pub(crate) fn more_not_passing(listed: &[NotPassing<'_>], shown: usize) -> Option<String> {
    let rest = listed.get(shown..).unwrap_or(&[]);
    if rest.is_empty() {
        return None;
    }
    let failing = rest.iter().filter(|n| n.failed).count() as u64;
    let inconclusive = rest.len() as u64 - failing;
    let part = |n: u64, what: &str| format!("{} more {what}", thousands(n));
    Some(match (failing, inconclusive) {
        (0, i) => format!("{} tenants", part(i, "inconclusive")),
        (f, 0) => format!("{} tenants", part(f, "failing")),
        (f, i) => format!(
            "{} and {} tenants",
            part(f, "failing"),
            part(i, "inconclusive")
        ),
    })
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
    /// Of which failed.
    pub failed: usize,
    /// Of which inconclusive.
    pub inconclusive: usize,
    /// The conclusive check (passed or failed) with the worst observed value: an inconclusive
    /// check's value rests on too few samples to be anyone's worst.
    pub worst: Option<&'a CheckReport>,
}

impl ExpectationSummary<'_> {
    /// `48 pass, 1 fail, 1 inconclusive`: always all three, so an inconclusive check is never
    /// hidden in a `48/50`.
    pub fn counts(&self) -> String {
        format!(
            "{} pass, {} fail, {} inconclusive",
            thousands(self.passed as u64),
            thousands(self.failed as u64),
            thousands(self.inconclusive as u64)
        )
    }
}

/// How the checks of `expect` went in `slo`.
pub(crate) fn expectation_summary<'a>(slo: &'a SloReport, expect: &str) -> ExpectationSummary<'a> {
    let checks: Vec<&CheckReport> = slo.checks.iter().filter(|c| c.expect == expect).collect();
    let worst = checks
        .iter()
        .copied()
        .filter(|c| c.observed.is_some() && c.status != "inconclusive")
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
        failed: checks.iter().filter(|c| c.status == "fail").count(),
        inconclusive: checks.iter().filter(|c| c.status == "inconclusive").count(),
        worst,
    }
}

/// A table as aligned plain text for the terminal, indented two spaces: text columns left,
/// numbers right.
fn plain_table(table: &super::tables::Table) -> String {
    let widths: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            table
                .rows
                .iter()
                .map(|r| r.get(i).map_or(0, |cell| cell.text().chars().count()))
                .chain(std::iter::once(c.title.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::from(" ");
        for ((cell, width), column) in cells.iter().zip(&widths).zip(&table.columns) {
            let pad = width.saturating_sub(cell.chars().count());
            out.push(' ');
            if column.numeric {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        format!("{}\n", out.trim_end())
    };
    let mut out = line(table.columns.iter().map(|c| c.title.as_str()).collect());
    for row in &table.rows {
        out.push_str(&line(row.iter().map(|c| c.text()).collect()));
    }
    out
}

/// `, class report` when an SLO judges only some of its tenants' requests; empty otherwise.
pub fn requests_filter(slo: &SloReport) -> String {
    if slo.requests.is_empty() {
        String::new()
    } else {
        format!(", {}", slo.requests)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{mixed, report};
    use super::*;

    #[test]
    fn counts_are_separate_and_failures_come_before_inconclusive_tenants() {
        // 20 inconclusive tenants first in report order, then 15 failing, then 5 passing.
        let r = mixed(20, 15, 5);
        let out = render(&r, "simulate many.toml --seed 1", &[]);
        assert!(
            out.contains(
                "p99 < 250ms              5 pass, 15 fail, 20 inconclusive, worst 334ms (t-0034)"
            ),
            "{out}"
        );
        // The listed tenants are the failing ones (12 of 15), none of the inconclusive ones,
        // and the rest is counted by kind.
        let listed: Vec<&str> = out.lines().filter(|l| l.contains("        ✗ ")).collect();
        assert_eq!(listed.len(), MAX_LISTED_FAILURES, "{out}");
        assert!(
            listed[0].contains("t-0020") && !out.contains("? t-0000"),
            "{out}"
        );
        assert!(
            out.contains("… and 3 more failing and 20 more inconclusive tenants"),
            "{out}"
        );
        // The invariant never exercised is N/A, and not counted as held.
        assert!(out.contains("  N/A   eu_residency: not exercised"), "{out}");
        assert!(
            out.contains(
                "SLOs: 0 pass, 1 fail, 0 inconclusive · invariants: 1 held, 0 violated, 1 N/A"
            ),
            "{out}"
        );
    }

    #[test]
    fn an_inconclusive_check_has_no_worst() {
        let r = mixed(4, 0, 0);
        let out = render(&r, "simulate many.toml --seed 1", &[]);
        assert!(
            out.contains("0 pass, 0 fail, 4 inconclusive, no conclusive check"),
            "{out}"
        );
        assert!(!out.contains("worst"), "{out}");
        assert!(out.contains("        ? t-0000"), "{out}");
        // With conclusive checks beside it, the inconclusive 900 ms is nobody's worst.
        let r = mixed(1, 0, 1);
        assert_eq!(
            super::super::tables::worst_observed(&r.slos[0], "p99 < 250ms"),
            "10.0ms (t-0001)"
        );
    }
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
