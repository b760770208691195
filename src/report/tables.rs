//! The tables shared by `summary.md`, `index.html` and the comparison: SLOs (observed vs
//! expected), tiers, worst tenants, blast radius, faults and invariants, as plain cells that
//! the Markdown and HTML renderers escape and lay out.

use std::collections::{BTreeMap, BTreeSet};

use super::summary::{
    errors, expectation_summary, finished, latency_cells, observed_text, percent, rank_tenants,
};
use super::timeline::FaultSpan;
use super::{Report, SloReport};
use crate::text::thousands;

/// One table cell.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Free text.
    Text(String),
    /// Code: a tenant name, an expectation, a command.
    Code(String),
    /// `pass`, `fail` or `inconclusive`, shown as a badge.
    Status(String),
}

impl Cell {
    /// The cell's text without markup.
    pub fn text(&self) -> &str {
        match self {
            Cell::Text(s) | Cell::Code(s) | Cell::Status(s) => s,
        }
    }
}

/// A column heading.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Heading.
    pub title: String,
    /// Right-aligned (numbers).
    pub numeric: bool,
}

/// A table: headings and rows of cells.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column headings.
    pub columns: Vec<Column>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(columns: &[(&str, bool)]) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|(title, numeric)| Column {
                    title: (*title).to_string(),
                    numeric: *numeric,
                })
                .collect(),
            rows: Vec::new(),
        }
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn code(s: impl Into<String>) -> Cell {
    Cell::Code(s.into())
}

/// Seconds for reading: `30s`, `1.5s`.
pub fn seconds(s: f64) -> String {
    format!("{s}s")
}

/// `pass`, `fail` or `inconclusive` for one expectation of an SLO.
pub fn expectation_status(slo: &SloReport, expect: &str) -> &'static str {
    let checks = slo.checks.iter().filter(|c| c.expect == expect);
    let mut status = "pass";
    for c in checks {
        match c.status.as_str() {
            "fail" => return "fail",
            "inconclusive" => status = "inconclusive",
            _ => {}
        }
    }
    status
}

/// `bystanders (each)`: an SLO's selection and scope.
pub fn selection(slo: &SloReport) -> String {
    format!(
        "{} ({}){}",
        slo.tenants,
        slo.scope,
        super::summary::requests_filter(slo)
    )
}

/// `50/50 pass` or `48/50 pass, 2 inconclusive`.
pub fn checks_passed(slo: &SloReport, expect: &str) -> String {
    let e = expectation_summary(slo, expect);
    let mut s = format!(
        "{}/{} pass",
        thousands(e.passed as u64),
        thousands(e.checks as u64)
    );
    if e.inconclusive > 0 {
        s.push_str(&format!(
            ", {} inconclusive",
            thousands(e.inconclusive as u64)
        ));
    }
    s
}

/// `69.2ms (light-045)`, or `no samples`.
pub fn worst_observed(slo: &SloReport, expect: &str) -> String {
    match expectation_summary(slo, expect).worst {
        Some(c) if slo.scope == "pooled" => observed_text(expect, c.observed),
        Some(c) => format!("{} ({})", observed_text(expect, c.observed), c.tenant),
        None => "no samples".to_string(),
    }
}

/// One row per SLO expectation: status, SLO, selection, window, expected, checks passed,
/// worst observed.
pub fn slos(report: &Report) -> Table {
    let mut t = Table::new(&[
        ("", false),
        ("SLO", false),
        ("tenants", false),
        ("window", false),
        ("expected", false),
        ("checks", true),
        ("worst observed", true),
    ]);
    for slo in &report.slos {
        for expect in &slo.expect {
            t.rows.push(vec![
                Cell::Status(expectation_status(slo, expect).to_string()),
                text(&slo.name),
                text(selection(slo)),
                code(&slo.window),
                code(expect),
                text(checks_passed(slo, expect)),
                text(worst_observed(slo, expect)),
            ]);
        }
    }
    t
}

/// One row per tier: tenants, requests, ok / throttled / errors shares, p50, p99.
pub fn tiers(report: &Report) -> Table {
    let mut t = Table::new(&[
        ("tier", false),
        ("tenants", true),
        ("requests", true),
        ("ok", true),
        ("throttled", true),
        ("errors", true),
        ("p50", true),
        ("p99", true),
    ]);
    for tier in &report.tiers {
        let errors = tier.rejected + tier.failed + tier.timed_out;
        let finished = tier.ok + tier.throttled + errors;
        let (p50, p99) = latency_cells(&tier.latency_ms);
        t.rows.push(vec![
            text(&tier.name),
            text(thousands(tier.tenants)),
            text(thousands(tier.requests)),
            text(percent(tier.ok, finished)),
            text(percent(tier.throttled, finished)),
            text(percent(errors, finished)),
            text(p50),
            text(p99),
        ]);
    }
    t
}

/// Per request class and tier (for scenarios with `[[classes]]`): the class, its pool, each
/// tier's requests, ok / throttled / errors shares, p50 and p99; a class's first row is its
/// total over every tier. `None` for a scenario without classes.
pub fn classes(report: &Report) -> Option<Table> {
    if report.classes.is_empty() {
        return None;
    }
    let mut t = Table::new(&[
        ("class", false),
        ("pool", false),
        ("tier", false),
        ("tenants", true),
        ("requests", true),
        ("ok", true),
        ("throttled", true),
        ("errors", true),
        ("p50", true),
        ("p99", true),
    ]);
    for class in &report.classes {
        let rows = std::iter::once(("all", &class.total)).chain(
            class
                .tiers
                .iter()
                .filter(|_| class.tiers.len() > 1)
                .map(|g| (g.name.as_str(), g)),
        );
        for (i, (tier, g)) in rows.enumerate() {
            let errors = g.rejected + g.failed + g.timed_out;
            let finished = g.ok + g.throttled + errors;
            let (p50, p99) = latency_cells(&g.latency_ms);
            let tier = if class.tiers.len() == 1 {
                class.tiers[0].name.as_str()
            } else {
                tier
            };
            t.rows.push(vec![
                if i == 0 { code(&class.name) } else { text("") },
                if i == 0 { text(&class.pool) } else { text("") },
                text(tier),
                text(thousands(g.tenants)),
                text(thousands(g.requests)),
                text(percent(g.ok, finished)),
                text(percent(g.throttled, finished)),
                text(percent(errors, finished)),
                text(p50),
                text(p99),
            ]);
        }
    }
    Some(t)
}

/// Per tier, the database and dependency counters (replica reads, stale reads, statement
/// timeouts, cache hit ratio, dependency throttles) when the scenario can have them.
pub fn counters(report: &Report) -> Option<Table> {
    let mut per_tier: Vec<(String, super::CountersReport)> = Vec::new();
    for tenant in &report.tenants {
        let Some(c) = &tenant.counters else {
            continue;
        };
        match per_tier.iter_mut().find(|(t, _)| *t == tenant.tier) {
            Some((_, sum)) => sum.add(c),
            None => per_tier.push((tenant.tier.clone(), c.clone())),
        }
    }
    if per_tier.is_empty() {
        return None;
    }
    let mut t = Table::new(&[
        ("tier", false),
        ("replica reads", true),
        ("stale reads", true),
        ("statement timeouts", true),
        ("cache lookups", true),
        ("hit ratio", true),
        ("dependency 429s", true),
    ]);
    for (tier, c) in per_tier {
        t.rows.push(vec![
            text(tier),
            text(thousands(c.replica_reads)),
            text(thousands(c.stale_reads)),
            text(thousands(c.statement_timeouts)),
            text(thousands(c.cache_hits + c.cache_misses)),
            text(
                c.hit_ratio()
                    .map_or("—".to_string(), |r| format!("{:.1}%", r * 100.0)),
            ),
            text(thousands(c.dependency_throttled)),
        ]);
    }
    Some(t)
}

/// The `n` worst tenants: most failed checks, then error rate, then p99, then name.
pub fn worst_tenants(report: &Report, n: usize) -> Table {
    let mut t = Table::new(&[
        ("tenant", false),
        ("tier", false),
        ("requests", true),
        ("ok", true),
        ("throttled", true),
        ("errors", true),
        ("p99", true),
        ("failed checks", true),
    ]);
    for (tenant, failed) in rank_tenants(report, n) {
        let f = finished(tenant);
        let (_, p99) = latency_cells(&tenant.latency_ms);
        t.rows.push(vec![
            code(&tenant.name),
            text(&tenant.tier),
            text(thousands(tenant.requests)),
            text(percent(tenant.ok, f)),
            text(percent(tenant.throttled, f)),
            text(percent(errors(tenant), f)),
            text(p99),
            text(thousands(failed)),
        ]);
    }
    t
}

/// Who was hurt: tenants named by faults, tenants judged by an SLO, tenants that failed a check.
struct Blast<'a> {
    targets: BTreeSet<&'a str>,
    judged: BTreeSet<&'a str>,
    hurt: BTreeSet<&'a str>,
}

fn blast<'a>(report: &'a Report, faults: &'a [FaultSpan]) -> Blast<'a> {
    let mut b = Blast {
        targets: faults
            .iter()
            .flat_map(|f| f.targets.iter().map(String::as_str))
            .collect(),
        judged: BTreeSet::new(),
        hurt: BTreeSet::new(),
    };
    for slo in &report.slos {
        for c in &slo.checks {
            if c.tenant == "(pooled)" {
                continue;
            }
            b.judged.insert(c.tenant.as_str());
            if c.status == "fail" {
                b.hurt.insert(c.tenant.as_str());
            }
        }
    }
    b
}

/// Per tier: tenants, fault targets, tenants judged by an SLO, and how many of those failed a
/// check.
pub fn blast_radius(report: &Report, faults: &[FaultSpan]) -> Table {
    let b = blast(report, faults);
    let mut t = Table::new(&[
        ("tier", false),
        ("tenants", true),
        ("fault targets", true),
        ("judged by an SLO", true),
        ("failed a check", true),
        ("share", true),
    ]);
    // One pass over the tenants for all tiers (a pass per tier was tiers × tenants).
    let mut sums: BTreeMap<&str, (u64, u64, u64, u64)> = BTreeMap::new();
    for m in &report.tenants {
        let (n, targets, judged, hurt) = sums.entry(m.tier.as_str()).or_default();
        *n += 1;
        *targets += u64::from(b.targets.contains(m.name.as_str()));
        *judged += u64::from(b.judged.contains(m.name.as_str()));
        *hurt += u64::from(b.hurt.contains(m.name.as_str()));
    }
    for tier in &report.tiers {
        let (n, targets, judged, hurt) = sums.get(tier.name.as_str()).copied().unwrap_or_default();
        t.rows.push(vec![
            text(&tier.name),
            text(thousands(n)),
            text(thousands(targets)),
            text(thousands(judged)),
            text(thousands(hurt)),
            text(percent(hurt, judged)),
        ]);
    }
    t
}

/// One sentence on the blast radius: how far the faults reached beyond their targets.
pub fn blast_sentence(report: &Report, faults: &[FaultSpan]) -> String {
    let b = blast(report, faults);
    let bystanders: Vec<&str> = b
        .judged
        .iter()
        .copied()
        .filter(|t| !b.targets.contains(t))
        .collect();
    let hurt_bystanders = bystanders.iter().filter(|t| b.hurt.contains(*t)).count() as u64;
    let hurt_targets = b.hurt.iter().filter(|t| b.targets.contains(*t)).count() as u64;
    let targets = if b.targets.is_empty() {
        "No fault names a tenant".to_string()
    } else {
        let names: Vec<&str> = b.targets.iter().copied().take(5).collect();
        let more = b.targets.len().saturating_sub(5);
        format!(
            "Faults target {}{}",
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )
    };
    let mut s = format!(
        "{targets}. {} of {} judged bystanders failed an SLO check ({})",
        thousands(hurt_bystanders),
        thousands(bystanders.len() as u64),
        percent(hurt_bystanders, bystanders.len() as u64)
    );
    if hurt_targets > 0 {
        s.push_str(&format!(
            "; {} fault target(s) failed a check too",
            thousands(hurt_targets)
        ));
    }
    s.push('.');
    s
}

/// One row per fault: name, what, from, to, targets.
pub fn faults(faults: &[FaultSpan]) -> Table {
    let mut t = Table::new(&[
        ("fault", false),
        ("what", false),
        ("from", true),
        ("to", true),
        ("targets", false),
    ]);
    for f in faults {
        let mut targets: Vec<&str> = f.targets.iter().map(String::as_str).take(8).collect();
        let more = f.targets.len().saturating_sub(8);
        let listed = if more > 0 {
            targets.push("…");
            format!("{} (+{more} more)", targets.join(", "))
        } else {
            targets.join(", ")
        };
        t.rows.push(vec![
            code(&f.name),
            text(&f.what),
            text(seconds(f.start_s)),
            text(seconds(f.end_s)),
            text(listed),
        ]);
    }
    t
}

/// One row per invariant: status, name, what was checked.
pub fn invariants(report: &Report) -> Table {
    let mut t = Table::new(&[("", false), ("invariant", false), ("detail", false)]);
    for i in &report.invariants {
        t.rows.push(vec![
            Cell::Status(if i.passed { "pass" } else { "fail" }.to_string()),
            text(&i.name),
            text(&i.detail),
        ]);
    }
    t
}
