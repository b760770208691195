//! The tables shared by `summary.md`, `index.html` and the comparison: SLOs (observed vs
//! expected), tiers, worst tenants, blast radius, faults and invariants, as plain cells that
//! the Markdown and HTML renderers escape and lay out.

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
    /// `pass`, `fail`, `inconclusive` or `n/a`, shown as a badge.
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

/// `50 pass, 0 fail, 0 inconclusive`: the three counts, always.
pub fn checks_passed(slo: &SloReport, expect: &str) -> String {
    expectation_summary(slo, expect).counts()
}

/// `69.2ms (light-045)` over the conclusive checks; `no conclusive check` when every check was
/// inconclusive (an inconclusive check has no worst).
pub fn worst_observed(slo: &SloReport, expect: &str) -> String {
    let e = expectation_summary(slo, expect);
    match e.worst {
        Some(c) if slo.scope == "pooled" => observed_text(expect, c.observed),
        Some(c) => format!("{} ({})", observed_text(expect, c.observed), c.tenant),
        None if e.checks > 0 => "no conclusive check".to_string(),
        None => "no checks".to_string(),
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

/// Per tier: tenants, fault targets, tenants judged by an SLO, tenants that failed a check, and
/// how many of those a fault explains (see [`super::blast`]).
pub fn blast_tiers(report: &Report) -> Table {
    let mut t = Table::new(&[
        ("tier", false),
        ("tenants", true),
        ("fault targets", true),
        ("judged by an SLO", true),
        ("failed a check", true),
        ("explained by a fault", true),
        ("unexplained", true),
    ]);
    for tier in &report.blast_tiers {
        t.rows.push(vec![
            text(&tier.tier),
            text(thousands(tier.tenants)),
            text(thousands(tier.targets)),
            text(thousands(tier.judged)),
            text(thousands(tier.failed)),
            text(thousands(tier.explained)),
            text(thousands(tier.unexplained)),
        ]);
    }
    t
}

/// What a fault touches, for reading: the first three resources and how many more.
pub fn touches(b: &super::BlastRadius) -> String {
    let shown: Vec<&str> = b.touches.iter().take(3).map(String::as_str).collect();
    let more = b.touches_count.saturating_sub(shown.len() as u64);
    if more > 0 {
        format!("{} and {} more", shown.join(", "), thousands(more))
    } else {
        shown.join(", ")
    }
}

/// One row per fault: what it touches, its targets (and how many failed), the tenants in its
/// scope and how many of those it hurt.
pub fn blast_faults(report: &Report) -> Table {
    let mut t = Table::new(&[
        ("fault", false),
        ("kind", false),
        ("window", true),
        ("touches", false),
        ("targets (failed)", true),
        ("others in scope", true),
        ("affected", true),
        ("share", true),
    ]);
    for b in &report.blast_radius {
        t.rows.push(vec![
            code(&b.fault),
            text(&b.kind),
            text(format!("{}–{}", seconds(b.from_s), seconds(b.to_s))),
            text(touches(b)),
            text(format!(
                "{} ({})",
                thousands(b.targeted),
                thousands(b.targets_failed)
            )),
            text(thousands(b.in_scope)),
            text(thousands(b.affected)),
            text(percent(b.affected, b.in_scope)),
        ]);
    }
    t
}

/// One sentence on the blast radius: who failed, and how much of it the faults explain.
pub fn blast_sentence(report: &Report) -> String {
    let sum = |f: fn(&super::BlastTier) -> u64| report.blast_tiers.iter().map(f).sum::<u64>();
    let (targets, judged, failed) = (sum(|t| t.targets), sum(|t| t.judged), sum(|t| t.failed));
    let (explained, unexplained) = (sum(|t| t.explained), sum(|t| t.unexplained));
    let targets = match (report.blast_radius.len(), targets) {
        (0, _) => "No faults".to_string(),
        (_, 0) => "No fault targets a tenant".to_string(),
        (_, n) => format!("Faults target {} tenant(s)", thousands(n)),
    };
    let mut s = format!(
        "{targets}. {} of {} tenants judged by an SLO failed a check",
        thousands(failed),
        thousands(judged)
    );
    if failed > 0 {
        s.push_str(&format!(
            ": {} explained by a fault (its target, or a tenant using what it touches during \
             it), {} by none",
            thousands(explained),
            thousands(unexplained)
        ));
    }
    s.push('.');
    s
}

/// One row per tier that submitted background jobs: submitted, completed, failed attempts,
/// dead-lettered, unfinished, p99 completion time; `None` when no tier did.
pub fn jobs(report: &Report) -> Option<Table> {
    let mut t = Table::new(&[
        ("tier", false),
        ("jobs", true),
        ("completed", true),
        ("failed attempts", true),
        ("dead-lettered", true),
        ("unfinished", true),
        ("p99 completion", true),
    ]);
    for tier in &report.tiers {
        let Some(j) = &tier.jobs else {
            continue;
        };
        t.rows.push(vec![
            text(&tier.name),
            text(thousands(j.submitted)),
            text(thousands(j.completed)),
            text(thousands(j.failed_attempts)),
            text(thousands(j.dead_lettered)),
            text(thousands(j.unfinished)),
            text(latency_cells(&j.completion_ms).1),
        ]);
    }
    (!t.rows.is_empty()).then_some(t)
}

/// The tenants with the most dead-lettered jobs (at most `n`, only those with any), most
/// first, then by name.
pub fn dead_letter_tenants(report: &Report, n: usize) -> Vec<(&str, u64, u64)> {
    let mut with: Vec<(&str, u64, u64)> = report
        .tenants
        .iter()
        .filter_map(|t| {
            let j = t.jobs.as_ref()?;
            (j.dead_lettered > 0).then_some((t.name.as_str(), j.dead_lettered, j.submitted))
        })
        .collect();
    with.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    with.truncate(n);
    with
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
            Cell::Status(i.status.clone()),
            text(&i.name),
            text(&i.detail),
        ]);
    }
    t
}
