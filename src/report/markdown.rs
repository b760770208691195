//! `summary.md`: the run for a CI job summary or a pull request: verdict, SLO table (observed vs
//! expected), blast radius, tiers, worst tenants, faults, invariants and the repro command.
//!
//! GitHub-flavoured Markdown; every piece of free text is escaped, so a tenant or SLO name can
//! never break a table.

use std::fmt::Write;

use super::Report;
use super::summary::observed_text;
use super::tables::{self, Cell, Table};
use super::timeline::FaultSpan;
use crate::text::thousands;

/// How many tenants the worst-tenants table shows.
const WORST_TENANTS: usize = 5;
/// How many failing tenants each SLO lists.
const LISTED_FAILURES: usize = 12;

/// Escapes free text for Markdown: characters that would start emphasis, links, code, HTML or
/// break a table cell are backslash-escaped; line breaks become spaces.
pub fn escape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '|' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '_' if !(word(prev) && word(next)) => out.push_str("\\_"),
            '<' if next.is_some_and(|n| n.is_ascii_alphabetic() || "/!?".contains(n)) => {
                out.push_str("\\<");
            }
            '#' if i == 0 => out.push_str("\\#"),
            _ => out.push(c),
        }
    }
    out
}

/// A code span holding `text` verbatim (pipes escaped for tables).
pub fn code(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ").replace('|', "\\|");
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

fn status(s: &str) -> String {
    match s {
        "pass" => "✅ PASS".to_string(),
        "fail" => "❌ **FAIL**".to_string(),
        "inconclusive" => "⚠️ **INCONCLUSIVE**".to_string(),
        other => escape(other),
    }
}

/// Renders one table as GitHub-flavoured Markdown.
pub fn table(t: &Table) -> String {
    let mut out = String::new();
    let head: Vec<String> = t.columns.iter().map(|c| escape(&c.title)).collect();
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let rule: Vec<&str> = t
        .columns
        .iter()
        .map(|c| if c.numeric { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in &t.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| match cell {
                Cell::Text(s) => escape(s),
                Cell::Code(s) => code(s),
                Cell::Status(s) => status(s),
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// The tenants that failed an SLO, one line each with what was observed.
fn failures(report: &Report) -> String {
    let mut out = String::new();
    for slo in report.slos.iter().filter(|s| s.status != "pass") {
        let mut by_tenant: Vec<(&str, Vec<String>)> = Vec::new();
        for c in slo.checks.iter().filter(|c| c.status != "pass") {
            let what = if c.status == "inconclusive" {
                format!(
                    "{} inconclusive ({} samples)",
                    code(&c.expect),
                    thousands(c.samples)
                )
            } else {
                format!(
                    "{} observed {}",
                    code(&c.expect),
                    escape(&observed_text(&c.expect, c.observed))
                )
            };
            match by_tenant.last_mut() {
                Some((tenant, items)) if *tenant == c.tenant.as_str() => items.push(what),
                _ => by_tenant.push((c.tenant.as_str(), vec![what])),
            }
        }
        let _ = writeln!(
            out,
            "\n**{}**: {} tenant(s) did not pass:\n",
            escape(&slo.name),
            thousands(by_tenant.len() as u64)
        );
        for (tenant, items) in by_tenant.iter().take(LISTED_FAILURES) {
            let _ = writeln!(out, "- {}: {}", code(tenant), items.join("; "));
        }
        if by_tenant.len() > LISTED_FAILURES {
            let _ = writeln!(
                out,
                "- … and {} more (see `report.json` or `junit.xml`)",
                thousands((by_tenant.len() - LISTED_FAILURES) as u64)
            );
        }
    }
    out
}

/// The failed tenants no fault explains, if any.
fn unexplained(report: &Report) -> String {
    let u = &report.unexplained;
    if u.count == 0 {
        return String::new();
    }
    let names: Vec<String> = u
        .tenants
        .iter()
        .take(LISTED_FAILURES)
        .map(|t| code(t))
        .collect();
    let more = u.count.saturating_sub(names.len() as u64);
    format!(
        "\n**Failed, explained by no fault** ({}): {}{}\n",
        thousands(u.count),
        names.join(", "),
        if more > 0 {
            format!(" and {} more", thousands(more))
        } else {
            String::new()
        }
    )
}

/// Renders `summary.md` for a run with the given fault windows. `plots` are the plot files
/// (relative paths) to link.
pub fn render(report: &Report, faults: &[FaultSpan], plots: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {}: {}\n",
        escape(&report.scenario),
        status(&report.verdict)
    );
    if !report.description.is_empty() {
        let _ = writeln!(out, "{}\n", escape(&report.description));
    }
    let _ = writeln!(
        out,
        "seed {} · {} simulated (warmup {}) · {} tenants · {} events · tenantsim {}\n",
        report.seed,
        tables::seconds(report.run.duration_s),
        tables::seconds(report.run.warmup_s),
        thousands(report.tenants.len() as u64),
        thousands(report.run.events),
        escape(&report.version)
    );
    if !report.overrides.is_empty() {
        let sets: Vec<String> = report
            .overrides
            .iter()
            .map(|o| code(&format!("--set {o}")))
            .collect();
        let _ = writeln!(out, "Overrides: {}\n", sets.join(" "));
    }

    let _ = writeln!(out, "## SLOs\n");
    if report.slos.is_empty() {
        let _ = writeln!(out, "No SLOs defined.");
    } else {
        out.push_str(&table(&tables::slos(report)));
        out.push_str(&failures(report));
    }

    let _ = writeln!(out, "\n## Blast radius\n");
    let _ = writeln!(out, "{}\n", escape(&tables::blast_sentence(report)));
    out.push_str(&table(&tables::blast_faults(report)));
    let _ = writeln!(out);
    out.push_str(&table(&tables::blast_tiers(report)));
    out.push_str(&unexplained(report));

    let _ = writeln!(out, "\n## Tiers (requests issued after warmup)\n");
    out.push_str(&table(&tables::tiers(report)));

    let _ = writeln!(out, "\n## Worst tenants\n");
    out.push_str(&table(&tables::worst_tenants(report, WORST_TENANTS)));

    if !faults.is_empty() {
        let _ = writeln!(out, "\n## Faults\n");
        out.push_str(&table(&tables::faults(faults)));
    }

    let _ = writeln!(out, "\n## Invariants\n");
    out.push_str(&table(&tables::invariants(report)));

    let _ = writeln!(out, "\n## Reproduce\n");
    let _ = writeln!(out, "```sh\n{}\n```\n", report.repro.replace('\n', " "));
    let mut files = vec![
        "[index.html](index.html) (plots)".to_string(),
        "[report.json](report.json)".to_string(),
        "[junit.xml](junit.xml)".to_string(),
    ];
    files.extend(plots.iter().map(|p| format!("[{p}]({p})")));
    let _ = writeln!(out, "Files: {}", files.join(" · "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_would_break_a_table_or_start_markup() {
        assert_eq!(escape("a | b"), "a \\| b");
        assert_eq!(escape("error_rate"), "error_rate");
        assert_eq!(escape("_x_"), "\\_x\\_");
        assert_eq!(escape("<script>"), "\\<script>");
        assert_eq!(escape("<0.01%"), "<0.01%");
        assert_eq!(escape("# one\ntwo"), "\\# one two");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("a`b"), "`` a`b ``");
    }
}
