//! `junit.xml`: one test suite per SLO with one test case per judged tenant (or one for a
//! pooled SLO), and a suite for the invariants, so CI systems show isolation SLOs as tests.
//!
//! Failures carry the observed and the expected values. For thousands of tenants the file stays
//! readable: up to [`MAX_CASES`] tenants of an SLO get their own case (failing ones first);
//! the rest are grouped into one case per tier and outcome. An inconclusive check (too few
//! samples) is a skipped case whose message says so: never a silent pass.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::summary::observed_text;
use super::{CheckReport, Report, SloReport};
use crate::text::thousands;

/// Most individual test cases per SLO.
pub const MAX_CASES: usize = 100;

/// Escapes text for XML content and attribute values; drops characters XML cannot hold.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Outcome of one test case.
enum Outcome {
    Pass,
    Fail(String, String),
    Skip(String),
}

struct Case {
    name: String,
    outcome: Outcome,
}

/// A tenant's checks in one SLO, in check order.
struct TenantChecks<'a> {
    tenant: &'a str,
    checks: Vec<&'a CheckReport>,
}

impl TenantChecks<'_> {
    fn status(&self) -> &'static str {
        if self.checks.iter().any(|c| c.status == "fail") {
            "fail"
        } else if self.checks.iter().any(|c| c.status == "inconclusive") {
            "inconclusive"
        } else {
            "pass"
        }
    }
}

fn describe(c: &CheckReport) -> String {
    if c.status == "inconclusive" {
        format!(
            "{}: inconclusive, {} samples (fewer than min_samples)",
            c.expect,
            thousands(c.samples)
        )
    } else {
        format!(
            "{}: observed {} ({})",
            c.expect,
            observed_text(&c.expect, c.observed),
            c.status
        )
    }
}

fn case_for(group: &TenantChecks<'_>) -> Case {
    let failing: Vec<String> = group
        .checks
        .iter()
        .filter(|c| c.status == "fail")
        .map(|c| {
            format!(
                "expected {}, observed {}",
                c.expect,
                observed_text(&c.expect, c.observed)
            )
        })
        .collect();
    let detail: Vec<String> = group.checks.iter().map(|c| describe(c)).collect();
    let outcome = match group.status() {
        "fail" => Outcome::Fail(failing.join("; "), detail.join("\n")),
        "inconclusive" => Outcome::Skip(format!("inconclusive: {}", detail.join("; "))),
        _ => Outcome::Pass,
    };
    Case {
        name: group.tenant.to_string(),
        outcome,
    }
}

fn cases(slo: &SloReport, tier_of: &BTreeMap<&str, &str>) -> Vec<Case> {
    // Tenants in the order they first appear, found through an index: a search of the groups
    // per check was quadratic (200,000 tenants took two minutes).
    let mut groups: Vec<TenantChecks<'_>> = Vec::new();
    let mut group_of: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &slo.checks {
        match group_of.get(c.tenant.as_str()) {
            Some(&g) => groups[g].checks.push(c),
            None => {
                group_of.insert(&c.tenant, groups.len());
                groups.push(TenantChecks {
                    tenant: &c.tenant,
                    checks: vec![c],
                });
            }
        }
    }
    if groups.len() <= MAX_CASES {
        return groups.iter().map(case_for).collect();
    }
    // Failing tenants first, then inconclusive ones, each in report order; the first
    // MAX_CASES get their own case, the rest one case per (tier, outcome).
    let rank = |g: &TenantChecks<'_>| match g.status() {
        "fail" => 0,
        "inconclusive" => 1,
        _ => 2,
    };
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&i| (rank(&groups[i]), i));
    let mut out = Vec::new();
    let mut rest: BTreeMap<(u8, &str), Vec<&str>> = BTreeMap::new();
    for (n, &i) in order.iter().enumerate() {
        let g = &groups[i];
        if n < MAX_CASES && rank(g) < 2 {
            out.push(case_for(g));
        } else {
            let tier = tier_of.get(g.tenant).copied().unwrap_or("?");
            rest.entry((rank(g), tier)).or_default().push(g.tenant);
        }
    }
    for ((rank, tier), tenants) in rest {
        let listed: Vec<&str> = tenants.iter().copied().take(20).collect();
        let names = format!(
            "{}{}",
            listed.join(", "),
            if tenants.len() > listed.len() {
                format!(
                    " and {} more",
                    thousands((tenants.len() - listed.len()) as u64)
                )
            } else {
                String::new()
            }
        );
        let count = thousands(tenants.len() as u64);
        let (name, outcome) = match rank {
            0 => (
                format!("tier {tier}: {count} more failing tenants"),
                Outcome::Fail(format!("{count} more tenants failed"), names),
            ),
            1 => (
                format!("tier {tier}: {count} more inconclusive tenants"),
                Outcome::Skip(format!("inconclusive: {names}")),
            ),
            _ => (format!("tier {tier}: {count} tenants pass"), Outcome::Pass),
        };
        out.push(Case { name, outcome });
    }
    out
}

fn write_suite(out: &mut String, (name, classname, cases, checks): &Suite, report: &Report) {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail(..)))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skip(_)))
        .count();
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        escape(name),
        cases.len()
    );
    let _ = writeln!(
        out,
        "    <properties>\n      <property name=\"seed\" value=\"{}\"/>\n      <property name=\"repro\" value=\"{}\"/>",
        report.seed,
        escape(&report.repro)
    );
    // The check counts themselves: grouped cases count tenants, not checks.
    if let Some(checks) = checks {
        let _ = writeln!(
            out,
            "      <property name=\"checks\" value=\"{}\"/>",
            escape(checks)
        );
    }
    let _ = writeln!(out, "    </properties>");
    for case in cases {
        let open = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(classname),
            escape(&case.name)
        );
        match &case.outcome {
            Outcome::Pass => {
                let _ = writeln!(out, "{open}/>");
            }
            Outcome::Fail(message, detail) => {
                let _ = writeln!(
                    out,
                    "{open}>\n      <failure message=\"{}\" type=\"slo\">{}</failure>\n    </testcase>",
                    escape(message),
                    escape(detail)
                );
            }
            Outcome::Skip(message) => {
                let _ = writeln!(
                    out,
                    "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(message)
                );
            }
        }
    }
    let _ = writeln!(out, "  </testsuite>");
}

/// A suite: name, class name, cases, and the check counts of an SLO (`12 pass, 3 fail, 1
/// inconclusive`).
type Suite = (String, String, Vec<Case>, Option<String>);

/// Renders `junit.xml` for a run.
pub fn render(report: &Report) -> String {
    let tier_of: BTreeMap<&str, &str> = report
        .tenants
        .iter()
        .map(|t| (t.name.as_str(), t.tier.as_str()))
        .collect();
    let mut suites: Vec<Suite> = Vec::new();
    for slo in &report.slos {
        let name = format!(
            "{}: {} [{}, {}, {}{}]",
            report.scenario,
            slo.name,
            slo.tenants,
            slo.scope,
            slo.window,
            super::summary::requests_filter(slo)
        );
        let classname = format!("{}.slo", report.scenario);
        let status = |s: &str| slo.checks.iter().filter(|c| c.status == s).count() as u64;
        let checks = format!(
            "{} pass, {} fail, {} inconclusive",
            thousands(status("pass")),
            thousands(status("fail")),
            thousands(status("inconclusive"))
        );
        suites.push((name, classname, cases(slo, &tier_of), Some(checks)));
    }
    let invariant_cases = report
        .invariants
        .iter()
        .map(|i| Case {
            name: i.name.clone(),
            outcome: match i.status.as_str() {
                "pass" => Outcome::Pass,
                // Never exercised: neither held nor broken.
                "n/a" => Outcome::Skip(format!("N/A: {}", i.detail)),
                _ => Outcome::Fail(format!("{} failed", i.name), i.detail.clone()),
            },
        })
        .collect();
    suites.push((
        format!("{}: invariants", report.scenario),
        format!("{}.invariant", report.scenario),
        invariant_cases,
        None,
    ));
    let tests: usize = suites.iter().map(|s| s.2.len()).sum();
    let count = |f: fn(&Outcome) -> bool| -> usize {
        suites
            .iter()
            .flat_map(|s| s.2.iter())
            .filter(|c| f(&c.outcome))
            .count()
    };
    let failures = count(|o| matches!(o, Outcome::Fail(..)));
    let skipped = count(|o| matches!(o, Outcome::Skip(_)));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">",
        escape(&format!(
            "tenantsim {} seed {} ({})",
            report.scenario, report.seed, report.verdict
        ))
    );
    for suite in &suites {
        write_suite(&mut out, suite, report);
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::report;
    use super::*;

    #[test]
    fn one_case_per_tenant_when_few() {
        let xml = render(&report(40, 3));
        assert_eq!(xml.matches("<testcase ").count(), 40);
        assert_eq!(xml.matches("<failure ").count(), 3);
        assert!(
            xml.contains("name=\"t-0000\">\n      <failure message=\"expected p99 &lt; 250ms, observed 300ms\""),
            "{xml}"
        );
    }

    #[test]
    fn thousands_of_tenants_are_grouped_by_tier() {
        let xml = render(&report(5_000, 150));
        // 100 failing tenants on their own, the other 50 failing and the 4,850 passing ones
        // in one case per tier each.
        assert_eq!(xml.matches("<testcase ").count(), 104, "{xml}");
        assert_eq!(xml.matches("<failure ").count(), 102);
        assert!(
            xml.contains("name=\"tier gold: 2,425 tenants pass\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"tier free: 25 more failing tenants\""),
            "{xml}"
        );
        assert!(xml.len() < 40_000, "{} bytes", xml.len());
        assert!(
            xml.contains(
                "<testsuites name=\"tenantsim many seed 1 (fail)\" tests=\"104\" failures=\"102\""
            ),
            "{xml}"
        );
    }

    #[test]
    fn an_invariant_never_exercised_is_skipped_and_counts_are_separate() {
        let xml = render(&super::super::fixtures::mixed(2, 1, 3));
        assert!(
            xml.contains("name=\"eu_residency\">\n      <skipped message=\"N/A: not exercised"),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"checks\" value=\"3 pass, 1 fail, 2 inconclusive\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            escape("p99 < 250ms & \"x\""),
            "p99 &lt; 250ms &amp; &quot;x&quot;"
        );
        assert_eq!(escape("a\u{1}b\nc"), "ab&#10;c");
    }
}
