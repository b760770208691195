//! `summary.md`: the run for a CI job summary or a pull request: verdict, SLO table (observed vs
//! expected), blast radius, tiers, worst tenants, faults, invariants and the repro command.
//!
//! GitHub-flavoured Markdown; every piece of free text is escaped, so a tenant or SLO name can
//! never break a table.

use std::fmt::Write;

use super::Report;
use super::summary::{more_not_passing, not_passing, observed_text};
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
        "n/a" => "➖ N/A".to_string(),
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

/// The tenants that did not pass an SLO, failing ones first, one line each with what was
/// observed.
fn failures(report: &Report) -> String {
    let mut out = String::new();
    for slo in report.slos.iter().filter(|s| s.status != "pass") {
        let listed = not_passing(slo);
        let failing = listed.iter().filter(|n| n.failed).count() as u64;
        let _ = writeln!(
            out,
            "\n**{}**: {} tenant(s) failed, {} inconclusive:\n",
            escape(&slo.name),
            thousands(failing),
            thousands(listed.len() as u64 - failing)
        );
        for n in listed.iter().take(LISTED_FAILURES) {
            let items: Vec<String> = n
                .checks
                .iter()
                .map(|c| {
                    if c.status == "inconclusive" {
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
                    }
                })
                .collect();
            let mark = if n.failed { "❌" } else { "⚠️" };
            let _ = writeln!(out, "- {mark} {}: {}", code(n.tenant), items.join("; "));
        }
        if let Some(more) = more_not_passing(&listed, LISTED_FAILURES) {
            let _ = writeln!(out, "- … and {more} (see `report.json` or `junit.xml`)");
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
    let _ = writeln!(out, "{}\n", escape(&super::summary::verdict_counts(report)));
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
    if let Some(classes) = tables::classes(report) {
        let _ = writeln!(out, "\n## Request classes\n");
        out.push_str(&table(&classes));
    }
    if let Some(counters) = tables::counters(report) {
        let _ = writeln!(out, "\n## Databases and dependencies\n");
        out.push_str(&table(&counters));
    }
    for (title, t) in super::onboarding::tables(report) {
        let _ = writeln!(out, "\n## {title}\n");
        out.push_str(&table(&t));
    }

    let _ = writeln!(out, "\n## Worst tenants\n");
    out.push_str(&table(&tables::worst_tenants(report, WORST_TENANTS)));

    if let Some(jobs) = tables::jobs(report) {
        let _ = writeln!(out, "\n## Background jobs (submitted after warmup)\n");
        out.push_str(&table(&jobs));
        let worst = tables::dead_letter_tenants(report, WORST_TENANTS);
        if !worst.is_empty() {
            let listed: Vec<String> = worst
                .iter()
                .map(|(name, dead, submitted)| {
                    format!(
                        "{} {} of {}",
                        code(name),
                        thousands(*dead),
                        thousands(*submitted)
                    )
                })
                .collect();
            let _ = writeln!(out, "\nMost dead-lettered: {}", listed.join(", "));
        }
    }

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
    fn failing_tenants_are_listed_before_inconclusive_ones_with_separate_counts() {
        let r = super::super::fixtures::mixed(20, 3, 2);
        let md = render(&r, &[], &[]);
        assert!(
            md.contains("| `p99 < 250ms` | 2 pass, 3 fail, 20 inconclusive | 322ms (t-0022) |"),
            "{md}"
        );
        assert!(
            md.contains("**fast**: 3 tenant(s) failed, 20 inconclusive:\n\n- ❌ `t-0020`"),
            "{md}"
        );
        assert!(md.contains("- … and 11 more inconclusive tenants"), "{md}");
        assert!(md.contains("| ➖ N/A | eu_residency |"), "{md}");
    }

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
